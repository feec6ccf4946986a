"""``python -m sedensenet`` = the ``sedensenet`` console script."""

from sedensenet.cli.main import main

raise SystemExit(main())
