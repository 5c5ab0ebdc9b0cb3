from captum_ext.cli.main import main

main()
