"""Reading and writing media and files: images and videos as uint8 arrays, atomic writes."""
