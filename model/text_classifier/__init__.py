"""A text classifier fine-tuned with PyTorch Lightning, packaged for SageMaker BYO containers.

Data flows one way: contract (SageMaker's files and variables) -> config -> data -> text
-> network, optim -> lightning_module -> artifacts (model/) -> inference -> codecs
-> predictor.
"""
