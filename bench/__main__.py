"""`python -m bench`: run the benchmark cases and print the table."""

from bench.runner import main

raise SystemExit(main())
