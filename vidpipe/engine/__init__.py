"""Running one project: the state machine (`project`) and the generation cache (`cache`)."""
