// Package auth verifies and issues the tokens healthgw accepts: SMART
// Backend Services client assertions (private_key_jwt) from registered
// organisations, the gateway's own short-lived access tokens, and patient
// tokens from a configured identity provider. It defines organisations,
// their kinds and the scope vocabulary, and the Principal a valid token
// becomes.
package auth
