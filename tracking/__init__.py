"""Records of every proxied call and of evaluation runs."""
