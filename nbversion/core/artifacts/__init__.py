"""What is versioned: YOLO datasets (layout, validation, view, diff), archives, models and their frameworks."""
