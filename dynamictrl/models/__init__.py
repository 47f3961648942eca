"""Models: the DynamiCtrl transformer and the code that finds and loads weights."""
