"""``python -m compare`` runs the same console script as ``compare``."""
import sys

from compare.cli.main import main

sys.exit(main())
