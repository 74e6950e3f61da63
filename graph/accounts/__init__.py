"""B2B accounts: companies, the customers who work there, and who decides.

Pure Python beside the identity core: title seniority, email-domain
matching, buying-group templates and decision units. Stores keep accounts
and their links; this package says what they mean.
"""
