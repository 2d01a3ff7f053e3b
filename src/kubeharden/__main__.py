from kubeharden.cli import main

main()
