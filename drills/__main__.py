import sys

from drills.faults import main

sys.exit(main())
