from shopml.cli import main

main()
