"""Jobs: what one command does from checked options to written files (`animate`, `pose`), with no CLI in them."""
