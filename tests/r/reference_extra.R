#!/usr/bin/env Rscript
# Reference values for stratify.trial.analyse_trial on two more data sets, from R's survival.
#
# Inputs (written by tests/r/export_references.py):
#     tests/data/mirocals_seed3.csv   simulate_mirocals(220, seed = 3), analysis columns only
#     tests/data/mirocals_seed10093.csv   the same with seed = 10093 (a hard Cox fit)
#     tests/data/gbsg2_monthly.csv    GBSG2 with time = ceiling(days / 30.4375): tied times
# Outputs (read by tests/test_trial_reference.py):
#     OUTDIR/r_reference_mirocals_seed3.json
#     OUTDIR/r_reference_mirocals_seed10093.json
#     OUTDIR/r_reference_gbsg2_monthly.json
# Run from anywhere:
#     Rscript tests/r/reference_extra.R [OUTDIR]        # OUTDIR defaults to tests/data
#
# Configurations (mirror tests/test_trial_reference.py):
#   MIROCALS: time = time, event = event, arm = arm (0/1, treated 1),
#     covariates = age, bulbar_onset, log_delta_fs, svc, csf_pnfh; modifier = csf_pnfh,
#     cutpoints = 750, 3700 (strata: p < 750; 750 <= p <= 3700; p > 3700, as
#     stratify.trial.strata), horizon = 640 days.
#   GBSG2 monthly: as tests/r/reference_gbsg2.R (arm = horTh, treated "yes"; covariates
#     age, estrec, menostat, pnodes, progrec, tgrade, tsize; modifier = progrec,
#     cutpoint 20: progrec < 20, progrec >= 20) with time in months and horizon = 60 months.
# 95% intervals. Every call is recorded in the JSON under provenance$calls; the structure
# is that of tests/data/r_reference_gbsg2.json, plus:
#   ties                          distinct event times, and events sharing a time with another
#   cox_adjusted_breslow          the adjusted model refitted with ties = "breslow"
#   cox_adjusted_breslow_arm_hr   its arm hazard ratio (to show that the reference
#                                 discriminates Efron from Breslow ties)
#   strata[[i]]                   also counts by arm; "terms" is null (and "estimable" false)
#                                 when an arm has fewer than 2 events, stratify's rule for NaN.
# Cox models are summary(coxph(...)) with ties = "efron" and the default coxph.control();
# hazard ratios, Wald CIs and Wald p-values are those of summary(). The RMST difference
# (treated - control) uses se = sqrt(se1^2 + se0^2), a normal CI and a two-sided normal p.
# The JSON writer and the KM/log-rank/RMST, Cox and HR-curve summaries are shared with
# tests/r/reference_gbsg2.R, in tests/r/common.R.

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(sub("^--file=", "", file_arg[1])) else "tests/r"
source(file.path(here, "common.R"))  # root, LEVEL, z, to_json, cox_terms, ...

out_arg <- commandArgs(trailingOnly = TRUE)  # optional: another output directory (the test)
out_dir <- if (length(out_arg)) out_arg[1] else file.path(root, "tests", "data")

CONFIGS <- list(
  list(
    name = "mirocals_seed3", csv = "tests/data/mirocals_seed3.csv",
    time = "time", event = "event", arm = "arm", arm_term = "arm",
    covariates = c("age", "bulbar_onset", "log_delta_fs", "svc", "csf_pnfh"),
    modifier = "csf_pnfh", cutpoints = c(750, 3700), horizon = 640,
    curve_at = c(0, 750, 2000, 3700, 6000),
    # JSON escapes, so the labels equal stratify's ("750\u20133700" has an en dash)
    labels = c("< 750", "750\\u20133700", "> 3700")),
  # The same design, seed 10093: lifelines' Newton-Raphson (step 0.95) diverges on the
  # adjusted model (one pNFH of 30,367 pg/mL); R converges in 7 iterations.
  list(
    name = "mirocals_seed10093", csv = "tests/data/mirocals_seed10093.csv",
    time = "time", event = "event", arm = "arm", arm_term = "arm",
    covariates = c("age", "bulbar_onset", "log_delta_fs", "svc", "csf_pnfh"),
    modifier = "csf_pnfh", cutpoints = c(750, 3700), horizon = 640,
    curve_at = c(0, 750, 2000, 3700, 6000),
    labels = c("< 750", "750\\u20133700", "> 3700")),
  list(
    name = "gbsg2_monthly", csv = "tests/data/gbsg2_monthly.csv",
    time = "time", event = "cens", arm = "horTh", arm_term = "horThyes",
    covariates = c("age", "estrec", "menostat", "pnodes", "progrec", "tgrade", "tsize"),
    modifier = "progrec", cutpoints = 20, horizon = 60,
    curve_at = c(0, 20, 100, 500),
    labels = c("< 20", "\\u2265 20"))
)

# stratify.trial.strata.assign_strata: 1 if m < c1, else 2 + #{c_j, j >= 2 : c_j < m}
assign_strata <- function(m, cuts) {
  upper <- 2L + vapply(m, function(v) sum(cuts[-1] < v), 0L)
  ifelse(m < cuts[1], 1L, upper)
}

reference <- function(cfg) {
  d <- read.csv(file.path(root, cfg$csv), stringsAsFactors = TRUE)
  surv <- sprintf("Surv(%s, %s)", cfg$time, cfg$event)
  rhs_adj <- paste(c(cfg$arm, cfg$covariates), collapse = " + ")
  rhs_int <- paste0(rhs_adj, " + ", cfg$arm, ":", cfg$modifier)
  f_arm <- as.formula(paste(surv, "~", cfg$arm))
  f_adj <- as.formula(paste(surv, "~", rhs_adj))
  f_int <- as.formula(paste(surv, "~", rhs_int))
  H <- cfg$horizon
  time <- d[[cfg$time]]
  status <- d[[cfg$event]]
  arm_levels <- if (is.factor(d[[cfg$arm]])) levels(d[[cfg$arm]]) else sort(unique(d[[cfg$arm]]))
  stopifnot(length(arm_levels) == 2)

  # ---- Kaplan-Meier, log-rank, RMST --------------------------------------------------------
  km_lr_rmst <- km_logrank_rmst(f_arm, d, H)

  # ---- Cox models --------------------------------------------------------------------------
  fit_unadj <- coxph_strict(f_arm, data = d, ties = "efron")
  fit_adj <- coxph_strict(f_adj, data = d, ties = "efron")
  fit_int <- coxph_strict(f_int, data = d, ties = "efron")
  fit_adj_breslow <- coxph_strict(f_adj, data = d, ties = "breslow")
  int_term <- paste0(cfg$arm_term, ":", cfg$modifier)
  stopifnot(identical(names(coef(fit_int))[c(1, length(coef(fit_int)))],
                      c(cfg$arm_term, int_term)))

  # ---- Strata ------------------------------------------------------------------------------
  d$stratum <- assign_strata(d[[cfg$modifier]], cfg$cutpoints)
  strata <- lapply(seq_along(cfg$labels), function(i) {
    di <- d[d$stratum == i, ]
    is_t <- di[[cfg$arm]] == arm_levels[2]
    ev <- di[[cfg$event]]
    counts <- list(label = cfg$labels[i], n = nrow(di), events = sum(ev),
                   n_control = sum(!is_t), n_treated = sum(is_t),
                   events_control = sum(ev[!is_t]), events_treated = sum(ev[is_t]))
    if (min(counts$events_control, counts$events_treated) < 2)
      return(c(counts, list(estimable = FALSE, terms = NULL)))
    fit <- coxph_strict(f_arm, data = di, ties = "efron")
    c(counts, list(estimable = TRUE), cox_terms(fit)[c("loglik", "terms")])
  })

  # ---- Ties --------------------------------------------------------------------------------
  event_times <- time[status == 1]
  tied <- event_times %in% event_times[duplicated(event_times)]
  ties <- list(distinct_event_times = length(unique(event_times)),
               events_at_tied_times = sum(tied))

  fml <- function(f) paste(deparse(f, width.cutoff = 500L), collapse = " ")
  cut_str <- paste(cfg$cutpoints, collapse = ", ")
  calls <- c(
    sprintf('d <- read.csv("%s", stringsAsFactors = TRUE)', cfg$csv),
    sprintf('km <- survfit(%s, data = d, conf.type = "log-log")', fml(f_arm)),
    sprintf("summary(km, times = %s)", H),
    sprintf('summary(km, rmean = %s)$table[, c("rmean", "se(rmean)")]', H),
    sprintf("survdiff(%s, data = d)", fml(f_arm)),
    sprintf('coxph(%s, data = d, ties = "efron")', fml(f_arm)),
    sprintf('coxph(%s, data = d, ties = "efron")', fml(f_adj)),
    sprintf('coxph(%s, data = d, ties = "efron")', fml(f_int)),
    sprintf('coxph(%s, data = d, ties = "breslow")', fml(f_adj)),
    sprintf("d$stratum <- assign_strata(d$%s, c(%s))  # 1: < c1; 2 + #{c[-1] < m} otherwise",
            cfg$modifier, cut_str),
    sprintf(paste('coxph(%s, data = d[d$stratum == i, ], ties = "efron")',
                  " # when each arm has >= 2 events"), fml(f_arm)))

  out <- list(
    provenance = list(
      script = "tests/r/reference_extra.R",
      input = cfg$csv,
      inputs_written_by = "tests/r/export_references.py",
      r_version = R.version.string,
      survival_version = as.character(packageVersion("survival")),
      calls = as.list(calls),
      conf_level = LEVEL, horizon = H, cutpoints = as.list(cfg$cutpoints),
      modifier = cfg$modifier, covariates = as.list(cfg$covariates),
      arm = cfg$arm, treated = as.character(arm_levels[2])),
    n_patients = nrow(d), n_events = sum(status),
    ties = ties)
  c(out, km_lr_rmst, list(
    cox_unadjusted = cox_terms(fit_unadj),
    cox_adjusted = cox_terms(fit_adj),
    cox_interaction = cox_terms(fit_int),
    cox_adjusted_breslow = cox_terms(fit_adj_breslow),
    cox_adjusted_breslow_arm_hr = unname(exp(coef(fit_adj_breslow)[cfg$arm_term])),
    hr_curve = hr_curve(fit_int, cfg$arm_term, int_term, cfg$curve_at),
    strata = strata))
}

dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
for (cfg in CONFIGS) {
  write_json(reference(cfg), file.path(out_dir, paste0("r_reference_", cfg$name, ".json")))
}
