package cyberarksim

import "strings"

// Schema URNs served by the simulator.
const (
	userURN          = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupURN         = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseURN    = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	customURN        = "urn:scim:schemas:extension:custom:2.0"
	containerURN     = "urn:ietf:params:scim:schemas:pam:1.0:Container"
	safeURN          = "urn:ietf:params:scim:schemas:cyberark:1.0:Safe"
	containerPermURN = "urn:ietf:params:scim:schemas:pam:1.0:ContainerPermission"
	privDataURN      = "urn:ietf:params:scim:schemas:pam:1.0:PrivilegedData"
	privDataExtURN   = "urn:ietf:params:scim:schemas:cyberark:1.0:PrivilegedData"
)

// Resource endpoint names, as they appear in URLs, Stats keys, Seed and Len.
const (
	Users                = "Users"
	Groups               = "Groups"
	Containers           = "Containers"
	ContainerPermissions = "ContainerPermissions"
	PrivilegedData       = "PrivilegedData"
)

// resourceType describes one SCIM resource type (RFC 7643 §6) and how the simulator stores it.
type resourceType struct {
	name        string // "User"
	endpoint    string // "Users"
	description string
	// cyberArkSegment is the path segment CyberArk writes in meta.location and $ref links; it
	// differs from the endpoint for Groups ("Group"), a quirk clients must survive.
	cyberArkSegment string
	core            *schema
	extensions      []*schema
	pam             bool // served only by the CyberArk profile
	patch           bool // PATCH is allowed on this endpoint
	// indexed lists the attribute paths kept in sorted indexes, so eq and sw filters on them
	// are O(log n). The first unique one is the resource's natural key.
	indexed []string
}

// extension finds an extension schema of rt by URN, case-insensitively.
func (rt *resourceType) extension(urn string) (int, *schema) {
	for i, s := range rt.extensions {
		if strings.EqualFold(s.id, urn) {
			return i, s
		}
	}
	return -1, nil
}

// schemaByURN finds the core schema or an extension by URN, case-insensitively.
func (rt *resourceType) schemaByURN(urn string) *schema {
	if strings.EqualFold(rt.core.id, urn) {
		return rt.core
	}
	_, s := rt.extension(urn)
	return s
}

// schemaList names the core schema and the extensions, for error messages.
func (rt *resourceType) schemaList() string {
	names := []string{rt.core.id}
	for _, e := range rt.extensions {
		names = append(names, e.id)
	}
	return strings.Join(names, ", ")
}

func (rt *resourceType) toJSON(location string) map[string]any {
	exts := make([]any, len(rt.extensions))
	for i, s := range rt.extensions {
		exts[i] = map[string]any{"schema": s.id, "required": false}
	}
	return map[string]any{
		"schemas":          []any{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":               rt.name,
		"name":             rt.name,
		"endpoint":         "/" + rt.endpoint,
		"description":      rt.description,
		"schema":           rt.core.id,
		"schemaExtensions": exts,
		"meta":             map[string]any{"resourceType": "ResourceType", "location": location},
	}
}

// multiValuedSubs builds the sub-attributes RFC 7643 §2.4 defines for multi-valued attributes.
func multiValuedSubs(valueType attrType, types ...string) []*attribute {
	return []*attribute{
		newAttr("value", valueType),
		strAttr("display"),
		strAttr("type").canonicalValues(types...),
		newAttr("primary", typeBoolean),
	}
}

var customSchema = &schema{
	id:          customURN,
	name:        "CustomUser",
	description: "CyberArk custom attributes (tenant-defined, any name)",
	schemaless:  true,
}

var userSchema = &schema{
	id:          userURN,
	name:        "User",
	description: "User Account",
	attrs: []*attribute{
		strAttr("userName").req().unique().desc("Unique identifier for the User, case-insensitive"),
		strAttr("name").withSubs(
			strAttr("formatted"), strAttr("familyName"), strAttr("givenName"),
			strAttr("middleName"), strAttr("honorificPrefix"), strAttr("honorificSuffix"),
		).desc("The components of the user's real name"),
		strAttr("displayName"),
		strAttr("nickName"),
		newAttr("profileUrl", typeReference).refs("external"),
		strAttr("title"),
		strAttr("userType"),
		strAttr("preferredLanguage"),
		strAttr("locale"),
		strAttr("timezone"),
		newAttr("active", typeBoolean),
		strAttr("password").writeOnly().desc("The User's cleartext password; never returned"),
		strAttr("emails").multiValued().withSubs(multiValuedSubs(typeString, "work", "home", "other")...),
		strAttr("phoneNumbers").multiValued().withSubs(multiValuedSubs(typeString, "work", "home", "mobile", "fax", "pager", "other")...),
		strAttr("ims").multiValued().withSubs(multiValuedSubs(typeString, "aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")...),
		strAttr("photos").multiValued().withSubs(multiValuedSubs(typeReference, "photo", "thumbnail")...),
		strAttr("addresses").multiValued().withSubs(
			strAttr("formatted"), strAttr("streetAddress"), strAttr("locality"), strAttr("region"),
			strAttr("postalCode"), strAttr("country"),
			strAttr("type").canonicalValues("work", "home", "other"), newAttr("primary", typeBoolean),
		),
		strAttr("groups").multiValued().readOnly().withSubs(
			strAttr("value").readOnly().exact(),
			newAttr("$ref", typeReference).refs("User", "Group").readOnly(),
			strAttr("display").readOnly(),
			strAttr("type").canonicalValues("direct", "indirect").readOnly(),
		).desc("Groups the user belongs to, derived from Group membership"),
		strAttr("entitlements").multiValued().withSubs(multiValuedSubs(typeString)...),
		strAttr("roles").multiValued().withSubs(multiValuedSubs(typeString)...),
		strAttr("x509Certificates").multiValued().withSubs(multiValuedSubs(typeBinary)...),
	},
}

var enterpriseSchema = &schema{
	id:          enterpriseURN,
	name:        "EnterpriseUser",
	description: "Enterprise User",
	attrs: []*attribute{
		strAttr("employeeNumber"),
		strAttr("costCenter"),
		strAttr("organization"),
		strAttr("division"),
		strAttr("department"),
		strAttr("manager").withSubs(
			strAttr("value").desc("The id of the manager's User resource"),
			newAttr("$ref", typeReference).refs("User").readOnly(),
			strAttr("displayName").readOnly(),
		),
	},
}

var groupSchema = &schema{
	id:          groupURN,
	name:        "Group",
	description: "Group",
	attrs: []*attribute{
		strAttr("displayName").req().unique(),
		strAttr("members").multiValued().withSubs(
			strAttr("value").req().immutable().exact(),
			newAttr("$ref", typeReference).refs("User", "Group").readOnly(),
			strAttr("display").readOnly(),
			strAttr("type").canonicalValues("User", "Group").immutable(),
		),
	},
}

var containerSchema = &schema{
	id:          containerURN,
	name:        "Container",
	description: "Privileged access container (a CyberArk Safe)",
	attrs: []*attribute{
		strAttr("name").req().unique().immutable().desc("Safe name; also the resource id"),
		strAttr("displayName"),
		strAttr("description"),
		strAttr("type").canonicalValues("safe"),
		strAttr("owner").withSubs(strAttr("value"), newAttr("$ref", typeReference).refs("User"), strAttr("display")),
		strAttr("privilegedData").multiValued().readOnly().withSubs(
			strAttr("value").readOnly(),
			newAttr("$ref", typeReference).refs("PrivilegedData").readOnly(),
			strAttr("display").readOnly(),
		).desc("Accounts stored in the safe, derived from PrivilegedData"),
	},
}

var safeSchema = &schema{
	id:          safeURN,
	name:        "Safe",
	description: "CyberArk Safe settings (any attribute)",
	schemaless:  true,
}

// safeRights are the CyberArk safe member permissions accepted in ContainerPermission.rights.
var safeRights = []string{
	"UseAccounts", "RetrieveAccounts", "ListAccounts", "AddAccounts", "UpdateAccountContent",
	"UpdateAccountProperties", "InitiateCPMAccountManagementOperations", "SpecifyNextAccountContent",
	"RenameAccounts", "DeleteAccounts", "UnlockAccounts", "ManageSafe", "ManageSafeMembers",
	"BackupSafe", "ViewAuditLog", "ViewSafeMembers", "AccessWithoutConfirmation", "CreateFolders",
	"DeleteFolders", "MoveAccountsAndFolders", "RequestsAuthorizationLevel1", "RequestsAuthorizationLevel2",
}

var containerPermissionSchema = &schema{
	id:          containerPermURN,
	name:        "ContainerPermission",
	description: "Safe member and its rights; id is <safeName>:<memberName>",
	attrs: []*attribute{
		strAttr("container").req().immutable().withSubs(
			strAttr("value").req().desc("Safe name"), strAttr("name"), strAttr("display"),
			newAttr("$ref", typeReference).refs("Container").readOnly(),
		),
		strAttr("user").immutable().withSubs(
			strAttr("value").desc("Member user name (or User id)"), strAttr("display"),
			newAttr("$ref", typeReference).refs("User").readOnly(),
		),
		strAttr("group").immutable().withSubs(
			strAttr("value").desc("Member group display name (or Group id)"), strAttr("display"),
			newAttr("$ref", typeReference).refs("Group").readOnly(),
		),
		strAttr("rights").multiValued().canonicalValues(safeRights...),
	},
}

var privilegedDataSchema = &schema{
	id:          privDataURN,
	name:        "PrivilegedData",
	description: "Privileged account stored in a safe",
	attrs: []*attribute{
		strAttr("name").req(),
		strAttr("displayName"),
		strAttr("type").canonicalValues("password", "key"),
		strAttr("description"),
		strAttr("container").req().immutable().withSubs(
			strAttr("value").req().desc("Safe name"), strAttr("display"),
			newAttr("$ref", typeReference).refs("Container").readOnly(),
		),
	},
}

var privilegedDataExtSchema = &schema{
	id:          privDataExtURN,
	name:        "CyberArkPrivilegedData",
	description: "CyberArk account properties (any attribute)",
	schemaless:  true,
}

var (
	userType = &resourceType{
		name: "User", endpoint: Users, cyberArkSegment: "Users", description: "User Account",
		core: userSchema, extensions: []*schema{enterpriseSchema, customSchema}, patch: true,
		indexed: []string{"userName", "externalId", "displayName", "name.givenName", "name.familyName", "name.formatted", "emails.value"},
	}
	groupType = &resourceType{
		name: "Group", endpoint: Groups, cyberArkSegment: "Group", description: "Group (CyberArk role)",
		core: groupSchema, extensions: []*schema{customSchema}, patch: true,
		indexed: []string{"displayName", "externalId"},
	}
	containerType = &resourceType{
		name: "Container", endpoint: Containers, cyberArkSegment: "Containers", description: "Safe",
		core: containerSchema, extensions: []*schema{safeSchema, customSchema}, pam: true,
		indexed: []string{"name", "displayName", "owner.value"},
	}
	containerPermissionType = &resourceType{
		name: "ContainerPermission", endpoint: ContainerPermissions, cyberArkSegment: "ContainerPermissions",
		description: "Safe member", core: containerPermissionSchema, pam: true,
		indexed: []string{"container.value", "user.value", "group.value"},
	}
	privilegedDataType = &resourceType{
		name: "PrivilegedData", endpoint: PrivilegedData, cyberArkSegment: "PrivilegedData",
		description: "Privileged account", core: privilegedDataSchema,
		extensions: []*schema{privilegedDataExtSchema, customSchema}, pam: true,
		indexed: []string{"name", "container.value"},
	}
	allResourceTypes = []*resourceType{userType, groupType, containerType, containerPermissionType, privilegedDataType}
)

// commonAttrs are the attributes every resource has (RFC 7643 §3.1). They are not part of any
// schema's attribute list but can be filtered on and requested.
var (
	idAttr         = strAttr("id").exact().readOnly().always().unique()
	externalIDAttr = strAttr("externalId").exact()
	metaAttr       = strAttr("meta").readOnly().withSubs(
		strAttr("resourceType").exact().readOnly(),
		newAttr("created", typeDateTime).readOnly(),
		newAttr("lastModified", typeDateTime).readOnly(),
		newAttr("location", typeReference).exact().readOnly(),
		strAttr("version").exact().readOnly(),
	)
)

// commonAttr finds id, externalId or meta by name, case-insensitively.
func commonAttr(name string) *attribute {
	for _, a := range []*attribute{idAttr, externalIDAttr, metaAttr} {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}
