"""Each page's figures assembled from its numbers, the HTML report, the presets' claims."""
