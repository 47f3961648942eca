from dynamictrl.cli import main

raise SystemExit(main())
