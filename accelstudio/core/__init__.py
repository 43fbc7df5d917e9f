"""Qt-free core: model loading, inspection, recipes, compression, measurement, the run store."""
