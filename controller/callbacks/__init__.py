"""Queue callbacks: a waiting caller presses 1, keeps the place and is called back once."""
