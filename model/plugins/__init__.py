"""Model plug-ins: one folder each, side by side. Yours goes here too.

Each folder is a package whose `__init__.py` defines `plugin`, an instance of
`sagemaker_platform.plugin.Plugin`, with a `SAGEMAKER_PLUGIN` marker file beside it (a
folder without one is never imported). Training picks one with the `model` hyperparameter
(`text_classifier` by default); serving finds it in the model directory's plugin.json.
`make new-model NAME=my_model` writes a working skeleton to start from.
"""
