# Shared code of tests/r/reference_gbsg2.R and tests/r/reference_extra.R: the repository
# root, the JSON writer, and the Kaplan-Meier / log-rank / RMST, Cox and HR-curve summaries
# that both write into their reference JSONs.
#
# Sourced, not run. The sourcing script first sets `here` to its own directory, e.g.
#     file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
#     here <- if (length(file_arg)) dirname(sub("^--file=", "", file_arg[1])) else "tests/r"
#     source(file.path(here, "common.R"))
# so that the scripts run from any directory.

suppressPackageStartupMessages(library(survival))

root <- normalizePath(file.path(here, "..", ".."))  # repository root

LEVEL <- 0.95  # every interval is a 95% interval
z <- qnorm(1 - (1 - LEVEL) / 2)

# ---- JSON writer (numbers with 17 significant digits) -------------------------------------
# jsonlite is not installed with Debian's r-cran-survival, so JSON is written by hand.
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.null(x)) return("null")
  if (is.list(x)) {
    if (is.null(names(x))) {
      items <- vapply(x, to_json, "", indent = inner)
      return(paste0("[\n", inner, paste(items, collapse = paste0(",\n", inner)), "\n", indent, "]"))
    }
    items <- mapply(function(k, v) paste0('"', k, '": ', to_json(v, inner)), names(x), x)
    return(paste0("{\n", inner, paste(items, collapse = paste0(",\n", inner)), "\n", indent, "}"))
  }
  scalar <- function(v) {
    if (is.na(v)) return("null")
    if (is.character(v)) return(paste0('"', gsub('"', '\\\\"', v), '"'))
    if (is.logical(v)) return(if (v) "true" else "false")
    sprintf("%.17g", v)
  }
  if (!is.null(names(x)) && length(x) > 0) return(to_json(as.list(x), indent))
  if (length(x) == 1) return(scalar(x))
  paste0("[", paste(vapply(x, scalar, ""), collapse = ", "), "]")
}

write_json <- function(x, path) {
  writeLines(to_json(x), path)
  cat("wrote", path, "\n")
}

# ---- Kaplan-Meier, log-rank, RMST ----------------------------------------------------------
# f_arm: Surv(time, event) ~ arm, whose first level is the control arm. Returns the "km",
# "logrank" and "rmst_diff" entries of a reference. KM: survfit(conf.type = "log-log") at
# the horizon; RMST: summary(survfit, rmean = horizon); log-rank: survdiff. The RMST
# difference (treated - control) uses se = sqrt(se1^2 + se0^2) (independent arms), a normal
# CI and a two-sided normal p-value.
km_logrank_rmst <- function(f_arm, d, horizon) {
  km <- survfit(f_arm, data = d, conf.type = "log-log")
  at_h <- summary(km, times = horizon)
  stopifnot(length(at_h$surv) == 2)
  rm_tab <- summary(km, rmean = horizon)$table
  lr <- survdiff(f_arm, data = d)
  lr_p <- pchisq(lr$chisq, df = length(lr$n) - 1, lower.tail = FALSE)
  arm_values <- function(i) list(
    surv = at_h$surv[i], ci_low = at_h$lower[i], ci_high = at_h$upper[i],
    rmst = unname(rm_tab[i, "rmean"]), rmst_se = unname(rm_tab[i, "se(rmean)"]),
    n = unname(rm_tab[i, "records"]), events = unname(rm_tab[i, "events"]))
  control <- arm_values(1)  # first level: control
  treated <- arm_values(2)
  rmst_diff <- treated$rmst - control$rmst
  rmst_diff_se <- sqrt(treated$rmst_se^2 + control$rmst_se^2)
  list(
    km = list(control = control, treated = treated),
    logrank = list(chisq = lr$chisq, p = lr_p),
    rmst_diff = list(estimate = rmst_diff, se = rmst_diff_se,
                     ci_low = rmst_diff - z * rmst_diff_se, ci_high = rmst_diff + z * rmst_diff_se,
                     p = 2 * pnorm(-abs(rmst_diff / rmst_diff_se))))
}

# ---- Cox helpers ---------------------------------------------------------------------------
# Hazard ratios, Wald CIs and Wald p-values are those of summary(coxph(...)).
cox_terms <- function(fit) {
  s <- summary(fit, conf.int = LEVEL)
  cf <- s$coefficients
  ci <- s$conf.int
  out <- lapply(rownames(cf), function(term) list(
    coef = unname(cf[term, "coef"]), se = unname(cf[term, "se(coef)"]),
    hr = unname(ci[term, "exp(coef)"]), ci_low = unname(ci[term, 3]),
    ci_high = unname(ci[term, 4]), p = unname(cf[term, "Pr(>|z|)"])))
  names(out) <- rownames(cf)
  list(n = fit$n, events = fit$nevent, loglik = fit$loglik[2], terms = out)
}

# Any coxph warning (non-convergence, infinite coefficient) would make a reference worthless.
coxph_strict <- function(...) withCallingHandlers(coxph(...), warning = function(w)
  stop("coxph warned: ", conditionMessage(w)))

# HR(m) = exp(b_arm + m * b_int) with a delta-method band, from the interaction model.
hr_curve <- function(fit_int, arm_term, int_term, at) {
  terms2 <- c(arm_term, int_term)
  b <- coef(fit_int)[terms2]
  V <- vcov(fit_int)[terms2, terms2]
  lin <- b[1] + at * b[2]
  se_lin <- sqrt(V[1, 1] + 2 * at * V[1, 2] + at^2 * V[2, 2])
  list(modifier = at, hr = unname(exp(lin)),
       ci_low = unname(exp(lin - z * se_lin)), ci_high = unname(exp(lin + z * se_lin)))
}
