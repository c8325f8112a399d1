"""Reading uncal segments and reference files, writing products (astropy / stdatamodels)."""
