from aigw.entry import main

main()
