from ferrogate.cli import main

raise SystemExit(main())
