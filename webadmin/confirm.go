package webadmin

// confirm is the confirmation page of a destructive action: what will
// happen, in sentences, and one button that does it (or Cancel).
type confirm struct {
	What   []string
	Action string // where the button posts
	Button string
	Cancel string
	Danger bool
}
