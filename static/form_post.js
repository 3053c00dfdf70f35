// Submits the authorization response to the application at once; the button covers no-JS browsers.
document.getElementById("form-post").submit();
