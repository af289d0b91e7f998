#!/usr/bin/env Rscript
# Reference values for stratify.trial.analyse_trial on GBSG2, from R's survival package.
#
# Input:  tests/data/gbsg2.csv (written by tests/r/export_gbsg2.py)
# Output: tests/data/r_reference_gbsg2.json (read by tests/test_trial_reference.py)
# Run from anywhere:
#     Rscript tests/r/reference_gbsg2.R [OUTPUT.json]
#
# Configuration (mirrors the "gbsg2" case of tests/test_trial_reference.py):
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
# The JSON writer and these summaries are shared with tests/r/reference_extra.R, in
# tests/r/common.R.

file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(sub("^--file=", "", file_arg[1])) else "tests/r"
source(file.path(here, "common.R"))  # root, LEVEL, z, to_json, cox_terms, ...

HORIZON <- 1825
CUTPOINT <- 20
csv_path <- file.path(root, "tests", "data", "gbsg2.csv")
out_arg <- commandArgs(trailingOnly = TRUE)  # optional: another output file (used by the test)
json_path <- if (length(out_arg)) out_arg[1] else
  file.path(root, "tests", "data", "r_reference_gbsg2.json")

d <- read.csv(csv_path, stringsAsFactors = TRUE)
stopifnot(identical(levels(d$horTh), c("no", "yes")),
          identical(levels(d$menostat), c("Post", "Pre")),
          identical(levels(d$tgrade), c("I", "II", "III")))

# ---- Kaplan-Meier, log-rank, RMST (horTh = "no" is the control arm) -------------------------
km_lr_rmst <- km_logrank_rmst(Surv(time, cens) ~ horTh, d, HORIZON)

# ---- Cox models ----------------------------------------------------------------------------
f_unadj <- coxph_strict(Surv(time, cens) ~ horTh, data = d, ties = "efron")
f_adj <- coxph_strict(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
                        tgrade + tsize, data = d, ties = "efron")
f_int <- coxph_strict(Surv(time, cens) ~ horTh + age + estrec + menostat + pnodes + progrec +
                        tgrade + tsize + horTh:progrec, data = d, ties = "efron")

# ---- Strata: stratum 1 is progrec < 20, stratum 2 is progrec >= 20 ---------------------------
d$stratum <- ifelse(d$progrec < CUTPOINT, 1L, 2L)
strata <- lapply(1:2, function(i) {
  di <- d[d$stratum == i, ]
  fit <- coxph_strict(Surv(time, cens) ~ horTh, data = di, ties = "efron")
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
  n_patients = nrow(d), n_events = sum(d$cens))
out <- c(out, km_lr_rmst, list(
  cox_unadjusted = cox_terms(f_unadj),
  cox_adjusted = cox_terms(f_adj),
  cox_interaction = cox_terms(f_int),
  # HR(m) at a few modifier values
  hr_curve = hr_curve(f_int, "horThyes", "horThyes:progrec", c(0, 20, 100, 500)),
  strata = strata))

write_json(out, json_path)
