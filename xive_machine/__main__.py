"""`python -m xive_machine ...`: the same command line as the `xive-machine` script."""

from xive_machine.cli.main import main

raise SystemExit(main())
