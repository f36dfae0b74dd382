from eslkit.cli import main

main()
