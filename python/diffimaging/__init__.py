"""diffimaging"""
