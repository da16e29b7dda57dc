package router

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed prompts/*.tmpl
var promptFS embed.FS

// PromptVersion is the template in use. A change of wording is a new file
// and a new version, so provenance and cached answers say which prompt
// produced them.
const PromptVersion = "v1"

// Item is the news a prompt is about.
type Item struct {
	Ticker  string
	Title   string
	Summary string
}

// Prompter renders the versioned prompt template.
type Prompter struct {
	tmpl    *template.Template
	version string
}

// NewPrompter parses the embedded template of PromptVersion.
func NewPrompter() (*Prompter, error) {
	t, err := template.ParseFS(promptFS, "prompts/"+PromptVersion+".tmpl")
	if err != nil {
		return nil, fmt.Errorf("parsing prompt %s: %w", PromptVersion, err)
	}
	for _, name := range []string{"system", "user"} {
		if t.Lookup(name) == nil {
			return nil, fmt.Errorf("prompt %s defines no %q template", PromptVersion, name)
		}
	}
	return &Prompter{tmpl: t, version: PromptVersion}, nil
}

// Render fills the template with the item.
func (p *Prompter) Render(it Item) (Prompt, error) {
	var sys, user strings.Builder
	if err := p.tmpl.ExecuteTemplate(&sys, "system", it); err != nil {
		return Prompt{}, fmt.Errorf("rendering prompt %s: %w", p.version, err)
	}
	if err := p.tmpl.ExecuteTemplate(&user, "user", it); err != nil {
		return Prompt{}, fmt.Errorf("rendering prompt %s: %w", p.version, err)
	}
	return Prompt{System: sys.String(), User: user.String(), Version: p.version}, nil
}
