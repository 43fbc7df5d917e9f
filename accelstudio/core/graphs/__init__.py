"""What the Graph tab shows about a model's operator graph beyond its structure (which lives in core/model:
graph_groups, graph_layout, graph_drawing): the graph of a torch model through its ONNX export, overlays from
the recipe, runs and studies, and the diff of two runs."""
