"""Sub-commands of the ``reidbook`` CLI that live outside ``reidbook/cli.py`` (the CLI layer: they may use the
zoo, which the packages below them may not). Each module has ``add_arguments(parser)`` and ``main(args)``;
``reidbook/cli.py`` registers them by module name.

* :mod:`.prune` — ``reidbook prune``: prune a trained model with any criterion of the survey;
* :mod:`.prune_scenario` — ``reidbook prune-scenario``: one of the survey's design scenarios end to end.
"""
