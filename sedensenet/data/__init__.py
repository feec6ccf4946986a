"""Data: safe image loading, transforms, the demo shapes, image folders, split files and training datasets."""
