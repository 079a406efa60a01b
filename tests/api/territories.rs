// written by the tests helper
