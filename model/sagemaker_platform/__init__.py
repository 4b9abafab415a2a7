"""The platform: everything about SageMaker and running Lightning models, for any plug-in.

A plug-in (model/plugins/NAME/) brings the model; this package brings the rest. Data
flows one way:

    train: contract -> hyperparameters (config + the plug-in's) -> channels -> plug-in
           prepare/build -> training (Trainer, callbacks, distributed, resume) ->
           artifacts (model.ckpt, plugin.json) + plug-in export -> evaluation
    serve: serving (nginx + gunicorn, signals) -> service (decode -> predict -> encode)
           -> batching (one model thread) -> runtime (device, precision, cores) ->
           the plug-in's model

The plug-in interface is `plugin.Plugin`; `registry` finds plug-ins by name.
"""
