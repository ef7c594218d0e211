"""xive-machine: a POWER9 sPAPR machine in Python with exact XICS/XIVE interrupt controllers."""

__version__ = "0.1.0"
