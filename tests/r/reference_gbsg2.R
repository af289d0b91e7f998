#!/usr/bin/env Rscript
# Reference values for stratify.trial.analyse_trial on GBSG2, from R's survival package.
#
# Input:  tests/data/gbsg2.csv (written by tests/r/export_gbsg2.py)
# Output: tests/data/r_reference_gbsg2.json (read by tests/test_trial.py)
# Run from the repository root:
#     Rscript tests/r/reference_gbsg2.R [OUTPUT.json]
#
# Configuration (mirrors tests/test_trial.py):
#     time = time, event = cens, arm = horTh (treated "yes", control "no"),
#     covariates = age, estrec, menostat, pnodes, progrec, tgrade, tsize
#     (factors with R's default alphabetical levels: menostatPre, tgradeII, tgradeIII,
#     the same coding as TrialData's one-hot columns "menostat=Pre", "tgrade=II", ...),
#     modifier = progrec, cutpoints = 20, horizon = 1825 days, 95% intervals.
#
# The exact calls (also stored in the JSON under provenance$calls):
#     km     <- survfit(Surv(time, cens) ~ horTh, data = d, conf.type = "log-log")
#     summary(km, times = 1825)                          # surv, lower, upper per arm
#     summary(km, rmean = 1825)$table[, c("rmean", "se(rmean)")]  # = print(km, rmean = 1825)
#     survdiff(Surv(time, cens) ~ horTh, data = d)         # log-rank chisq, df = 1
#     coxph(Surv(time, cens) ~ horTh, data = d, ties = "efron")
#     coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
#           tgrade + tsize, data = d, ties = "efron")
#     coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
#           tgrade + tsize + horTh:progrec, data = d, ties = "efron")
#     per stratum (progrec < 20; progrec >= 20):
#     coxph(Surv(time, cens) ~ horTh, data = d[d$stratum == i, ], ties = "efron")
# Hazard ratios, Wald CIs and Wald p-values are those of summary(coxph(...)).
# The RMST difference (treated - control) uses se = sqrt(se1^2 + se0^2) (independent arms),
# a normal CI and a two-sided normal p-value.
# jsonlite is not installed with Debian's r-cran-survival, so JSON is written by hand below.

suppressPackageStartupMessages(library(survival))

HORIZON <- 1825
CUTPOINT <- 20
LEVEL <- 0.95
args <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args[grep("^--file=", args)])
root <- if (length(script_arg)) normalizePath(file.path(dirname(script_arg), "..", "..")) else "."
csv_path <- file.path(root, "tests", "data", "gbsg2.csv")
out_arg <- commandArgs(trailingOnly = TRUE)  # optional: another output file (used by the test)
json_path <- if (length(out_arg)) out_arg[1] else
  file.path(root, "tests", "data", "r_reference_gbsg2.json")

d <- read.csv(csv_path, stringsAsFactors = TRUE)
stopifnot(identical(levels(d$horTh), c("no", "yes")),
          identical(levels(d$menostat), c("Post", "Pre")),
          identical(levels(d$tgrade), c("I", "II", "III")))
z <- qnorm(1 - (1 - LEVEL) / 2)

# ---- JSON writer (numbers with 17 significant digits) -------------------------------------
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
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

# ---- Cox helpers ---------------------------------------------------------------------------
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

# ---- Kaplan-Meier, log-rank, RMST ----------------------------------------------------------
km <- survfit(Surv(time, cens) ~ horTh, data = d, conf.type = "log-log")
at_h <- summary(km, times = HORIZON)
rm_tab <- summary(km, rmean = HORIZON)$table
lr <- survdiff(Surv(time, cens) ~ horTh, data = d)
lr_p <- pchisq(lr$chisq, df = length(lr$n) - 1, lower.tail = FALSE)

arm_values <- function(i) list(
  surv = at_h$surv[i], ci_low = at_h$lower[i], ci_high = at_h$upper[i],
  rmst = unname(rm_tab[i, "rmean"]), rmst_se = unname(rm_tab[i, "se(rmean)"]),
  n = unname(rm_tab[i, "records"]), events = unname(rm_tab[i, "events"]))
control <- arm_values(1)   # horTh=no
treated <- arm_values(2)   # horTh=yes
rmst_diff <- treated$rmst - control$rmst
rmst_diff_se <- sqrt(treated$rmst_se^2 + control$rmst_se^2)

# ---- Cox models ----------------------------------------------------------------------------
f_unadj <- coxph(Surv(time, cens) ~ horTh, data = d, ties = "efron")
f_adj <- coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
                 tgrade + tsize, data = d, ties = "efron")
f_int <- coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
                 tgrade + tsize + horTh:progrec, data = d, ties = "efron")

# HR(m) = exp(b_arm + m * b_int) with a delta-method band, at a few modifier values.
curve_at <- c(0, 20, 100, 500)
b <- coef(f_int)[c("horThyes", "horThyes:progrec")]
V <- vcov(f_int)[c("horThyes", "horThyes:progrec"), c("horThyes", "horThyes:progrec")]
lin <- b[1] + curve_at * b[2]
se_lin <- sqrt(V[1, 1] + 2 * curve_at * V[1, 2] + curve_at^2 * V[2, 2])
hr_curve <- list(modifier = curve_at, hr = unname(exp(lin)),
                 ci_low = unname(exp(lin - z * se_lin)), ci_high = unname(exp(lin + z * se_lin)))

# ---- Strata: stratum 1 is progrec < 20, stratum 2 is progrec >= 20 ---------------------------
d$stratum <- ifelse(d$progrec < CUTPOINT, 1L, 2L)
strata <- lapply(1:2, function(i) {
  di <- d[d$stratum == i, ]
  fit <- coxph(Surv(time, cens) ~ horTh, data = di, ties = "efron")
  c(list(label = c("< 20", ">= 20")[i]), cox_terms(fit))
})

calls <- c(
  'read.csv("tests/data/gbsg2.csv", stringsAsFactors = TRUE)',
  'km <- survfit(Surv(time, cens) ~ horTh, data = d, conf.type = "log-log")',
  'summary(km, times = 1825)',
  'summary(km, rmean = 1825)$table[, c("rmean", "se(rmean)")]',
  'survdiff(Surv(time, cens) ~ horTh, data = d)',
  'coxph(Surv(time, cens) ~ horTh, data = d, ties = "efron")',
  paste('coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +',
        'tgrade + tsize, data = d, ties = "efron")'),
  paste('coxph(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +',
        'tgrade + tsize + horTh:progrec, data = d, ties = "efron")'),
  'd$stratum <- ifelse(d$progrec < 20, 1L, 2L)',
  'coxph(Surv(time, cens) ~ horTh, data = d[d$stratum == i, ], ties = "efron")  # i = 1, 2'
)

out <- list(
  provenance = list(
    script = "tests/r/reference_gbsg2.R",
    input = "tests/data/gbsg2.csv",
    r_version = R.version.string,
    survival_version = as.character(packageVersion("survival")),
    calls = as.list(calls),
    conf_level = LEVEL, horizon = HORIZON, cutpoints = list(CUTPOINT)),
  n_patients = nrow(d), n_events = sum(d$cens),
  km = list(control = control, treated = treated),
  logrank = list(chisq = lr$chisq, p = lr_p),
  rmst_diff = list(estimate = rmst_diff, se = rmst_diff_se,
                   ci_low = rmst_diff - z * rmst_diff_se, ci_high = rmst_diff + z * rmst_diff_se,
                   p = 2 * pnorm(-abs(rmst_diff / rmst_diff_se))),
  cox_unadjusted = cox_terms(f_unadj),
  cox_adjusted = cox_terms(f_adj),
  cox_interaction = cox_terms(f_int),
  hr_curve = hr_curve,
  strata = strata)

writeLines(to_json(out), json_path)
cat("wrote", json_path, "\n")
