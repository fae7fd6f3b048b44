import sys

from services.facematch.cli import main

sys.exit(main())
