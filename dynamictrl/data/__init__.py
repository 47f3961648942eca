"""Training data: the clip manifest, the dataset that reads clips and poses, and the latent / T5 cache."""
