"""Command line: ``sedensenet COMMAND``; each command module registers its sub-parsers."""
