"""Models: SE-DenseNet with SE at chosen sites, key inference, safe checkpoints and format readers."""
