from accelstudio.cli import main

raise SystemExit(main())
