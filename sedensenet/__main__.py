"""``python -m sedensenet`` = the ``sedensenet`` console script."""

from .cli import main

raise SystemExit(main())
