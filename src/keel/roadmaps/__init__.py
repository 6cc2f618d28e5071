"""roadmaps: personalised learning roadmaps on infrastructure that fails over for real."""
