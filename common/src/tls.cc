// placeholder: filled in by the skeleton work
