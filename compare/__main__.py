"""``python -m compare`` runs the same console script as ``compare``."""
import sys

from compare.cli import main

sys.exit(main())
