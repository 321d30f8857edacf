"""mixopt: choose the data mixture of a language model's pretraining corpus empirically."""
__version__ = "0.1.0"
