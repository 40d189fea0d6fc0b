from fsrouter.cli import main

main()
