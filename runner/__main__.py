from runner.startup import main

raise SystemExit(main())
