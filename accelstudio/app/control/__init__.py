"""The window's state and controllers: the undoable settings and the objects that connect views to the model and runs."""
