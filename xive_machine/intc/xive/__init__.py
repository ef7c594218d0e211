"""Emulated XIVE (POWER9 exploitation mode): esb (PQ functions), source, router, presenter, tctx (TIMA),
regs (layouts); spapr.SpaprXive is the sPAPR front end the machine installs."""
