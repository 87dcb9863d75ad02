"""Connected platforms: the CRM, the email platform, an AI model API, a cloud."""
